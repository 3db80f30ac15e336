"""The HashiCorp Vault / OpenBao HTTP API, below both of its users: the
``hashicorp`` secret provider (providers/hashicorp.py) and the transit master
key source (keys/transit.py). It imports neither of them, nor the integrated
vault, so the key sources stay below the providers.

- ``endpoint``: where a Vault token may be sent (https://, or http:// to a
  loopback address only: threat-model row N1). The one check.
- ``settings``: one connection block (``secrets.config`` or
  ``encryption.transit``) read the same way for both users: URL, timeout, TLS,
  AppRole or token.
- ``client``: an authenticated hvac client and the one mapping of hvac/requests
  exceptions to our errors (never their text: it can quote a response body).
- ``light``: the stdlib read path of ``vault get`` (no hvac import).

hvac and requests are imported inside the functions that use them.
"""
