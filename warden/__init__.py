"""Release Warden: staged releases on Temporal that prove themselves safe at every stage."""

__version__ = "0.1.0"
