"""Tests of prelabel.interpolate."""
