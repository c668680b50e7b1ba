"""What was drawn: the bytes a client sends turned into the ink of the drawing.

decoding (data URI or base64 to bytes, bytes to a Pillow image, safely) -> plain_png (a
browser canvas's PNG read without Pillow, faster) -> image_ink (which pixels are ink: a
uint8 ink map) ; hollow_strokes fills outlined strokes, regions labels connected pixels,
rank_filter is Pillow's MaxFilter and MinFilter, fast; errors are the refusals, each with a
message a person can act on. Nothing here knows about digits: utils.py takes one digit's ink
on from here, and the reading package the rest.
"""
