"""The package version, in a leaf module so that any layer can name it without importing the package root."""

__version__ = "1.0.0"
