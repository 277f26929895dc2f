"""Tests of pixelforge.data (a package so test module names cannot clash with other test folders)."""
