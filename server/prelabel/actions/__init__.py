"""Action segments per person: taxonomy, per-frame features from skeletons, rules and TCN scorers, proposals.

Entry points live in submodules so that importing the package stays cheap (torch is imported only by
:mod:`prelabel.actions.tcn`): :func:`prelabel.actions.propose.propose_segments`,
:func:`prelabel.actions.train.train_action_model`, :mod:`prelabel.actions.taxonomy`.
"""
