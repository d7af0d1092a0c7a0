"""Dataset formats at the edges of Tagrack, one module per format.

Each module converts between its format's coordinates and the canonical
:class:`core.boxes.Box` (original-image pixels) in one place, and names its coordinate
space in its docstring.
"""
