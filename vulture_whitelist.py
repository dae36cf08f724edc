"""Names vulture reports as unused that are used by name from outside our code.

CI runs ``vulture src vulture_whitelist.py --min-confidence 60`` with pydantic validators and
FastAPI routes ignored by decorator (see .ci/run). Each line below says who uses the name. A name
that is really dead goes from the code, not into this file.
"""

# ruff: noqa: F821, B018  (bare, undefined names on purpose: mentioning a name is what vulture counts)

__getattr__  # module-level lazy imports (PEP 562), called by Python on attribute access

# Attributes written to library objects, read by the library.
intra_op_num_threads  # onnxruntime.SessionOptions
inter_op_num_threads  # onnxruntime.SessionOptions
execution_mode  # onnxruntime.SessionOptions
graph_optimization_level  # onnxruntime.SessionOptions
log_severity_level  # onnxruntime.SessionOptions
doc_string  # onnx graph and node protos
caption  # rich.table.Table
MAX_IMAGE_PIXELS  # PIL.Image: the decompression-bomb limit Pillow checks on open (forgeml.data.images)
disconnected  # uvicorn's RequestResponseCycle: the protocol's 408 marks it, so the app's answer is dropped
__signature__  # api._takes on its functions: read by inspect.signature (help(), the CLI drift test)
decoder  # tokenizers.Tokenizer
post_processor  # tokenizers.Tokenizer
use_cache  # transformers model config
benchmark  # torch.backends.cudnn
allow_tf32  # torch.backends.cuda.matmul and torch.backends.cudnn
force_exit  # uvicorn.Server

# GBMConfig's tree settings: training/gbm.py passes model_dump() to LightGBM, which reads them by name.
num_leaves
min_data_in_leaf
min_sum_hessian_in_leaf
feature_fraction
bagging_fraction
bagging_freq
lambda_l1
lambda_l2
min_gain_to_split
max_bin
cat_smooth
cat_l2
max_cat_to_onehot
producer_name  # onnx ModelProto, read by onnx tools

# AugmentConfig: serialised to JSON into the CNN's Augment module, which reads them by key.
flip  # config.AugmentConfig
crop_scale  # config.AugmentConfig
rotation  # config.AugmentConfig
jitter  # config.AugmentConfig

# Request fields pydantic reads from the body by name (accepted so that clients sending them at their
# no-effect value are not refused; never read by the server).
frequency_penalty  # deploy.server.lm_schema.GenerationFields
presence_penalty  # deploy.server.lm_schema.GenerationFields

# Called by name from outside the package.
app_from_env  # uvicorn's factory, passed as "forgeml.deploy.server.runner:app_from_env"
is_mock  # bundle.trees_onnx._Float32Thresholds: onnxmltools' dump_booster_model reads it with getattr

# Public API that the tests use.
from_sizes  # scratch.NeuralNetwork.from_sizes: the teaching network's constructor (tests/scratch)
variant  # compression.CompressResult.variant(name) (tests/compress)
as_category_strings  # features.categorical: the per-value spelling (tests/features)

# Fields only the Jinja2 templates read (templates/image_examples.html.j2: the card's image section).
uri  # evaluation.image_examples.Thumbnail
attribution_note  # evaluation.image_examples.ImageExamples
