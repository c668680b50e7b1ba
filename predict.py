"""Read digits and numbers in image files with the shipped ONNX model, from the shell.

    python predict.py digit.png photos/           # one line per file: path  number  confidence
    python predict.py --json scans/*.jpg          # one JSON object per file
Exit status: 0 if every file was read, 1 if any could not be (the others are still read).
"""

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

from app import reply
from drawing import decoding, errors
from reading import contract
from reading.recognizer import DEFAULT_MODEL, Recognizer

IMAGE_SUFFIXES = frozenset(suffix for suffix, name in Image.registered_extensions().items()
                           if name in decoding.ACCEPTED_FORMATS)


def image_paths(arguments):
    """Files named on the command line, and the image files inside named folders, sorted."""
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            yield from sorted(p for p in path.iterdir()
                              if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="IMAGE_OR_FOLDER")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the ONNX model to use")
    args = parser.parse_args(argv)

    recognizer = Recognizer(args.model)
    failures = 0
    for path in image_paths(args.paths):
        try:
            reading, _ = recognizer.read(path.read_bytes())
        except (OSError, errors.ImageError) as error:
            failures += 1
            message = error.strerror if isinstance(error, OSError) else str(error)
            if args.json:
                print(json.dumps({"path": str(path), "error": message}))
            print(f"{path}: {message}", file=sys.stderr)
            continue
        if args.json:  # the API's reply, less the images
            answer = reply(reading, previews=False)
            print(json.dumps({"path": str(path), "number": answer["number"],
                              "not_a_digit": answer["not_a_digit"],
                              "confidence": answer["confidence"],
                              "digits": [{key: digit[key] for key in ("digit", "confidence", "box")}
                                         for digit in answer["digits"]]}))
        else:
            read = contract.NOT_A_DIGIT_NAME if reading.not_a_digit else reading.number
            print(f"{path}  {read}  {reading.probability:.3f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
