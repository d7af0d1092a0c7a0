"""The demo project: synthetic clothing scenes and the project built from them."""
