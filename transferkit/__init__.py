"""transferkit: transfer learning for small labelled datasets."""

__version__ = "0.1.0"
