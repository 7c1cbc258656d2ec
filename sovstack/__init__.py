"""sovstack: deploy and run a sovereign private cloud with the sovstack.cloud collection."""

__version__ = "0.1.0"
