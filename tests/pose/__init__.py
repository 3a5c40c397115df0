"""Tests of prelabel.pose."""
