"""`python -m serving serve`: the inference server (SageMaker runs the image as `<image> serve`).

`SAGEMAKER_MODEL_SERVER_WORKERS` processes (default: the cores) share the port; each loads the
model and batches its own requests. See serving/settings.py for the other variables.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import model, settings


def log_config() -> dict[str, Any]:
    """Applied in every worker process (uvicorn re-configures logging there): the server's own log
    on stderr, where serving/access.py also writes its lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "loggers": {
            "serving": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the model over HTTP")
    serve.add_argument("--model", default=model.default_uri(),
                       help="model directory or models:/ URI (env MODEL_URI, else AZUREML_MODEL_DIR on Azure ML; "
                            "default /opt/ml/model)")
    serve.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    serve.add_argument("--port", type=int, default=os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"),
                       help="port (env SAGEMAKER_BIND_TO_PORT; default 8080)")
    score = sub.add_parser("score", help="score every file of a folder into another, as a batch job does")
    score.add_argument("--model", default=model.default_uri(), help="model directory, as for serve")
    score.add_argument("--input", required=True, help="folder of input files (every file under it is scored)")
    score.add_argument("--output", required=True, help="folder for <file>.out answers and <file>.error problems")
    score.add_argument("--content-type", default="text/csv", help="of the input files (default text/csv)")
    score.add_argument("--accept", default="text/csv", help="of the answers (default text/csv)")
    score.add_argument("--max-payload-mb", type=int, default=6, help="largest chunk scored at once (default 6)")
    args = parser.parse_args(argv)
    if args.command == "score":
        from .batch_score import run

        return run(args.model, args.input, args.output, args.content_type, args.accept, args.max_payload_mb)
    try:
        config = settings.load()
    except settings.SettingsError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    os.environ["MODEL_URI"] = args.model  # read by create_app in each worker process
    uvicorn.run("serving.app:create_app", factory=True, host=args.host, port=args.port, workers=config.workers,
                http="serving.protocol:Connection", interface="asgi3", proxy_headers=False,
                access_log=False, log_config=log_config(), log_level="warning", lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
