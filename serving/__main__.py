"""`python -m serving serve`: the inference server (SageMaker runs the image as `<image> serve`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the model over HTTP")
    serve.add_argument("--model", default=os.environ.get("MODEL_URI", "/opt/ml/model"),
                       help="model directory or models:/ URI (env MODEL_URI; default /opt/ml/model)")
    serve.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    args = parser.parse_args(argv)

    import uvicorn

    from .app import Server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvicorn.run(Server(args.model), host=args.host, port=args.port, workers=1, access_log=False,
                log_level="warning", lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
