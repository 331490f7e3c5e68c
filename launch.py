"""Start the assistant on the bundled demo data, training whatever is missing first.

python launch.py               # build what is missing, then serve the chat UI and API
python launch.py --build-only  # build what is missing, then exit
"""

from __future__ import annotations

import argparse
import sys
import time

from assistant.core.errors import ArtifactError, DataError
from assistant.core.settings import load_settings
from assistant.datasets.loading import load_dataset
from assistant.lifecycle.build import ensure_artifacts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--build-only", action="store_true", help="build, then exit without serving"
    )
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    try:
        settings = load_settings()
        dataset = load_dataset(settings.data_dir)
        steps = ensure_artifacts(dataset, settings)
        built = ", ".join(step.artifact for step in steps) or "nothing (all up to date)"
        print(f"Built {built} in {(time.perf_counter() - started) / 60:.1f} min.", flush=True)
        if args.build_only:
            return 0
        from assistant.channels.server import serve

        serve(settings, host=args.host, port=args.port)
    except (DataError, ArtifactError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
