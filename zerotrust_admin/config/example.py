"""The commented example config ``init`` writes when none exists."""

EXAMPLE_CONFIG = """\
# zerotrust-admin configuration.
# Lookup: --config PATH > $ZEROTRUST_CONFIG > $XDG_CONFIG_HOME/zerotrust/config.yaml
#         > /etc/zerotrust/config.yaml.  Every key is optional; run
# `zerotrust-admin config check` after editing and `config show` to see the result.
#
# Values may use ${VAR} (or ${VAR:-default}) from the environment, and any
# ZEROTRUST_<SECTION>_<KEY> variable overrides a key (ZEROTRUST_REDIS_PASSWORD).
# Never write a secret here in plain text: use <key>_file (mode 0600),
# ${VAR}, or vault:NAME.

secrets:
  provider: local            # local | hashicorp | aws | azure
  # config:                  # provider settings, e.g. for hashicorp:
  #   url: https://vault.example.com:8200
  #   mount_path: zerotrust
  #   role_id: ${VAULT_ROLE_ID}
  #   secret_id_file: /etc/zerotrust/vault-secret-id

encryption:
  # key_file: ~/.local/share/zerotrust/master.key   # default: $ZEROTRUST_HOME/master.key
  rotation:
    master_days: 90
    dek_days: 30
    session_hours: 24

sessions:
  backend: sqlite            # sqlite (embedded, default) | redis

# redis:
#   url: rediss://redis.example.com:6379/0
#   password_file: /etc/zerotrust/redis.pass

tls:
  min_version: "1.2"

audit:
  sinks: [file]              # file | syslog | stdout
"""
