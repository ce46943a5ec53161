"""modelserve-operator: one ModelDeployment in, a production TensorFlow Serving deployment out."""

__version__ = "0.1.0"
