"""The web app (``faceanim app``): a Gradio front end on the pipeline. It holds no animation logic."""
