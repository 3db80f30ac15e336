from zerotrust_admin.config.loader import Config, load_config, default_home, find_config_file

__all__ = ["Config", "default_home", "find_config_file", "load_config"]
