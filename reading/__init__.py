"""What a drawing says: its ink split into marks, each read by a network, as digits.

segment (marks split at blank gaps; which network reads each mark, and the reading) ->
utils.py (one mark as MNIST's 28x28) and number_reader (a mark of touching digits as the
reader's strip, and the reader's columns as digits) -> recognizer (the ONNX sessions: bytes
in, a Reading out). contract is what the two networks take and give, shared with training.
"""
