"""kvgate: an HTTP gateway speaking the Upstash Redis REST protocol."""

__version__ = "0.1.0"
