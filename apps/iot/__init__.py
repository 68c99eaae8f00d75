"""IoT anomaly detection: sensor readings scored live by online detectors (issue #15)."""
