"""For `DiffusionPipeline.from_pretrained(folder, custom_pipeline=DIFFUSERS_ENTRY)`.

diffusers 0.42 finds a pipeline class either in the diffusers package itself (by
model_index.json's `_class_name`) or in a custom-code file that it copies and imports. It
has no way to name a class in another installed package, and a code file inside a model
folder would run whenever any folder is loaded. So the folder stays plain data, and this
file, which only imports the installed class, is the custom code diffusers may run.
"""
from phenaki_core.pipelines.pipeline_phenaki import PhenakiPipeline  # noqa: F401
