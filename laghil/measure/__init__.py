"""Measurement: probe traffic, analysis, throughput, calibration."""
