"""The built-in demo model: its architecture from config, and the folder `make model` assembles."""
