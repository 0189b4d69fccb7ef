"""Phenaki Studio: the Gradio storyboard over phenaki_core (project, rendering, UI)."""
