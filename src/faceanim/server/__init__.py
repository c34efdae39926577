"""``faceanim serve``: an HTTP job API and WebSocket streaming (FastAPI + uvicorn) over the pipeline.

Interfaces only: every frame is made by :mod:`faceanim.pipeline`. Import :func:`create_app` from
``faceanim.server.app`` (it needs the ``server`` extra).
"""
