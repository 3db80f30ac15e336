"""zerotrust-admin: operator toolkit for the secrets of ZeroTrustKerberosLink."""

__version__ = "0.1.0"
