"""The recipe schema: what one training run is made of.

Every field a preset, the Builder or the command line can set lives here, validated once at
the edge (pydantic, ``extra="forbid"``), so that a typo is a clear message naming the field and
the allowed values, never a traceback from deep inside the loop.

A ``RunSpec`` is one fully resolved run (data + model + train + the variant's name); a
comparison expands into one RunSpec per variant and seed (see ``engine.catalogue.presets``).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_SEED = 2**32 - 1
"""Seeds are 0 ≤ seed < 2**32. torch.manual_seed takes up to 2**64 − 1 and SQLite's INTEGER (the
run store) up to 2**63 − 1, but numpy's legacy RandomState and sklearn's random_state, should a
seed reach them, stop at 2**32 − 1; the offsets the engine adds to a seed (dropout, augmentation,
ensemble members: below 10**8) stay far inside torch's and the store's range."""
MAX_STEPS = 10_000_000
"""The most optimizer steps (and step intervals, warmups, patiences) a recipe may ask for: weeks
of a small model's training; 10**12 steps would never end."""
MAX_EPOCHS = 100_000
MAX_SAMPLES = 10_000_000
"""The most samples a recipe may generate, keep or put in a batch."""
MAX_WIDTH = 1_000_000
"""The widest layer (units, channels, features, PCA components) a recipe may ask for; whether a
model of such widths fits the device is ``engine.recipe.footprint``'s question."""
MAX_LAYERS = 1_000
MAX_KERNEL = 1_024
"""The largest kernel size, stride or padding of a conv layer."""

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Steps = Annotated[int, Field(gt=0, le=MAX_STEPS)]
StepCount = Annotated[int, Field(ge=0, le=MAX_STEPS)]
Samples = Annotated[int, Field(gt=0, le=MAX_SAMPLES)]
SampleCount = Annotated[int, Field(ge=0, le=MAX_SAMPLES)]
Width = Annotated[int, Field(gt=0, le=MAX_WIDTH)]
Kernel = Annotated[int, Field(gt=0, le=MAX_KERNEL)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
OpenFraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable, and every
    float is finite (``allow_inf_nan=False``: ``lr = inf`` or ``init_value = nan`` are refused
    here, not found diverged after the run). No field needs inf: "off" is None (``clip_norm``,
    ``clip_value``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


DATASETS = (
    "spiral",
    "moons",
    "circles",
    "xor",
    "blobs",
    "regression_outliers",
    "digits",
    "mnist1d",
    "mnist",
    "fashion_mnist",
    "cifar10",
    "random",
    "file",
    "surface",
)
SURFACE_FUNCTIONS = (
    "rosenbrock", "rastrigin", "beale", "himmelblau", "saddle", "quadratic", "cliff", "tiny_net",
)
"""The 2-D test functions of `surface` runs (``engine.surfaces``: formulas, minima, windows)."""
FACTORY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"
"""A custom model's factory: a module path, a colon, a function (``mypkg.models:make_net``)."""
FILE_FIELDS = ("path", "targets", "label", "features", "task", "image_size")
"""The DataSpec fields of a user's own data (``name = "file"``)."""
Preprocess = Literal["none", "center", "standardize", "minmax", "pca", "pca_whiten", "zca_whiten"]


class DataSpec(Strict):
    """Which data, how much of it, and how it is prepared (fitted on the training split only)."""

    name: Literal[DATASETS]  # type: ignore[valid-type]
    n_samples: Samples | None = None
    """Total samples to generate (toy sets, random); the dataset's own size otherwise."""
    n_classes: Annotated[int, Field(ge=2, le=100)] | None = None
    """Classes for toy sets that have a choice (spiral arms, blobs, random)."""
    n_features: Width | None = None
    """Input size for `random` (and a flattened-size hint for others)."""
    noise: Annotated[float, Field(ge=0.0)] | None = None
    """Noise level of generated sets (toy sets, mnist1d's corruption scale factor)."""
    outlier_fraction: Fraction = 0.1
    """Share of regression targets replaced by gross outliers (`regression_outliers`)."""
    val_fraction: OpenFraction = 0.2
    test_fraction: OpenFraction = 0.2
    train_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    """Keep this share of the training split (the rest is dropped): for "more data" studies."""
    n_train: Samples | None = None
    """Keep at most this many training samples (after train_fraction)."""
    n_unlabeled: SampleCount = 0
    """Move this many training samples to an unlabeled pool (semi-supervised)."""
    scale_features: Annotated[float, Field(gt=0.0)] = 1.0
    """Multiply every second input feature by this factor (mixed-scale inputs for preprocessing)."""
    shift: Annotated[float, Field(ge=0.0)] = 0.0
    """Covariate shift: how strongly train inputs are drawn from a different region than test."""
    preprocess: Preprocess = "none"
    pca_components: Width | None = None
    whiten_eps: Annotated[float, Field(gt=0.0)] = 1e-5
    root: str | None = None
    """Folder with the files of mnist / fashion_mnist / cifar10 (default: the data folder, where
    `dllab data get` puts them; a run never downloads)."""
    split_seed: Seed | None = None
    """Seed of the train/val/test split; defaults to the run's seed."""
    surface: Literal[SURFACE_FUNCTIONS] | None = None  # type: ignore[valid-type]
    """`surface` runs: the 2-D test function whose point is trained (``engine.surfaces``); no data,
    no network: the parameters are the point (x, y)."""
    start: list[float] | None = None
    """`surface` runs: the start point [x, y] (default: the function's usual start)."""
    start_jitter: Annotated[float, Field(ge=0.0)] = 0.0
    """`surface` runs: std of a Gaussian offset added to the start, drawn from the run's seed (so
    different seeds start at slightly different points; 0 makes every seed identical)."""
    kappa: Annotated[float, Field(gt=0.0)] = 50.0
    """`surface` runs: the condition number κ of `quadratic`, ½·(x² + κ·y²)."""
    sweep_lrs: list[Annotated[float, Field(gt=0.0)]] = Field(default_factory=list)
    """`surface` runs: extra paths at these learning rates from the same start, moved in the same
    batch as the main path; the run reports `lr_hit_share` (share that end within `hit_radius`)."""
    sweep_starts: Annotated[int, Field(ge=0, le=MAX_SAMPLES)] = 0
    """`surface` runs: extra paths from this many random starts drawn uniformly in the function's
    window (seeded by the run); the run reports `start_hit_share` and `start_mean_loss`."""
    hit_radius: Annotated[float, Field(gt=0.0)] = 0.1
    """`surface` runs: a path has reached the minimum when it ends closer than this to it."""
    escape_step: Annotated[float, Field(gt=0.0)] | None = None
    """`surface` runs: where the gradient vanishes (‖∇f‖ < 1e-8) but the Hessian has a negative
    eigenvalue, move this far along that eigenvector before the next step (a saddle escape)."""
    path: str | None = None
    """`file` data: a .csv / .tsv table with a header, a .npz holding `x` and `y`, a .npy of inputs
    (with `targets`), or a folder of images with one subfolder per class (``engine.data.files``). A
    relative path is relative to the preset file."""
    targets: str | None = None
    """`file` data from a .npy of inputs: the .npy of their targets."""
    label: str | None = None
    """`file` tables: the label column (default: one named label, target, y or class)."""
    features: Annotated[list[str], Field(min_length=1, max_length=100_000)] | None = None
    """`file` tables: the feature columns (default: every column but the label)."""
    task: Literal["classification", "regression"] | None = None
    """`file` data: what the targets are (default: inferred: text or few whole numbers are classes)."""
    image_size: Annotated[list[Annotated[int, Field(gt=0, le=4096)]], Field(min_length=2, max_length=2)] | None = None
    """`file` folders of images: resize every image to [height, width] (default: all the same size)."""

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataSpec:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% for training")
        return self

    @model_validator(mode="after")
    def _file_fields(self) -> DataSpec:
        if self.name == "file" and not self.path:
            raise ValueError("name = 'file' needs a `path`: a .csv / .tsv, a .npz, a .npy or a folder of images")
        given = [f for f in FILE_FIELDS if getattr(self, f) is not None]
        if self.name != "file" and given:
            raise ValueError(f"`{given[0]}` is only used with name = 'file' (your own data)")
        return self

    @model_validator(mode="after")
    def _surface_fields(self) -> DataSpec:
        if self.name == "surface" and self.surface is None:
            raise ValueError(f"name = 'surface' needs a `surface` function: one of {', '.join(SURFACE_FUNCTIONS)}")
        if self.name != "surface" and self.surface is not None:
            raise ValueError("`surface` is only used with name = 'surface'")
        if self.start is not None and len(self.start) != 2:
            raise ValueError(f"start must be a point [x, y], got {len(self.start)} numbers")
        return self


Activation = Literal["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "maxout"]
Init = Literal[
    "default",
    "zeros",
    "constant",
    "normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "sparse",
]


class ModelSpec(Strict):
    """The network: an MLP, CNN or GRU body (or your own), its activation, normalization, noise and
    initial weights. A `gru` has len(hidden) layers of hidden[0] units (``engine.models.recurrent``)."""

    kind: Literal["mlp", "cnn", "linear", "gru", "custom"] = "mlp"
    factory: Annotated[str, Field(pattern=FACTORY_PATTERN, max_length=200)] | None = None
    """`custom`: your own model, ``"package.module:function"``; the function takes the input shape and
    the number of outputs and returns an ``nn.Module`` (``engine.models.custom``). dllab imports it
    only when you allow it (``--allow-code`` or ``DLLAB_ALLOW_CODE=1``)."""
    hidden: Annotated[list[Width], Field(max_length=MAX_LAYERS)] = Field(default_factory=lambda: [100, 100])
    """Hidden widths of the MLP (or of the CNN's dense head)."""
    depth: Annotated[int, Field(gt=0, le=MAX_LAYERS)] | None = None
    width: Width | None = None
    """Shortcut: `depth` hidden layers of `width` units (overrides `hidden`)."""
    channels: Annotated[list[Width], Field(max_length=MAX_LAYERS)] = Field(default_factory=lambda: [32, 32, 32])
    """CNN: channels of each conv layer (1-D for vector inputs, 2-D for images)."""
    kernel_size: Kernel = 5
    stride: Kernel = 2
    padding: Annotated[int, Field(ge=0, le=MAX_KERNEL)] | None = None
    """CNN padding; defaults to kernel_size // 2."""
    activation: Activation = "relu"
    leaky_slope: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.01
    maxout_pieces: Annotated[int, Field(ge=2, le=8)] = 2
    norm: Literal["none", "batch", "layer"] = "none"
    dropout: OpenFraction = 0.0
    input_dropout: OpenFraction = 0.0
    dropconnect: OpenFraction = 0.0
    residual: bool = False
    """Residual blocks: h + f(h) between hidden layers of equal width."""
    init: Init = "default"
    init_std: Annotated[float, Field(gt=0.0)] = 0.01
    """std of `normal`; half-width of `uniform`."""
    init_value: float = 0.1
    """The value for `constant` init."""
    init_gain: Annotated[float, Field(gt=0.0)] | None = None
    """Gain for Xavier / Kaiming (defaults: torch's recommended gain for the activation)."""
    sparse_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9
    """Share of each unit's incoming weights that `sparse` init sets to zero."""
    bias_init: float = 0.0
    kernel_sizes: list[Kernel] | None = None
    """CNN: one kernel size per conv layer (as many as `channels`); overrides `kernel_size`.
    The mnist1d paper's CNN uses [5, 3, 3] with stride 2 and padding 1."""
    ensemble: Annotated[int, Field(ge=1, le=32)] = 1
    """Train this many copies of the network from different initial weights on the same batches
    (``engine.techniques.ensembles``); `ensemble_*` metrics average their probabilities, `members_*` average
    their own scores, and the plain metrics stay those of the first copy (the single model)."""

    @property
    def hidden_sizes(self) -> list[int]:
        if self.depth is not None or self.width is not None:
            return [self.width or 100] * (self.depth if self.depth is not None else 2)
        return list(self.hidden)

    @model_validator(mode="after")
    def _custom_factory(self) -> ModelSpec:
        if self.kind == "custom" and self.factory is None:
            raise ValueError("kind = 'custom' needs a `factory`: \"package.module:function\" returning an nn.Module")
        if self.kind != "custom" and self.factory is not None:
            raise ValueError("`factory` is only used with kind = 'custom' (your own model)")
        return self

    @model_validator(mode="after")
    def _one_kernel_per_conv(self) -> ModelSpec:
        if self.kernel_sizes is not None and len(self.kernel_sizes) != len(self.channels):
            raise ValueError(
                f"kernel_sizes has {len(self.kernel_sizes)} entries for {len(self.channels)} conv layers "
                "(channels): give one kernel size per conv layer"
            )
        return self


Optimizer = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lbfgs"]
Schedule = Literal["constant", "step", "exponential", "inverse_time", "cosine", "plateau"]
Loss = Literal[
    "cross_entropy", "mse_onehot", "mse_softmax", "hinge", "mse", "l1", "smooth_l1"
]
CLASSIFICATION_LOSSES = ("cross_entropy", "mse_onehot", "mse_softmax", "hinge")
REGRESSION_LOSSES = ("mse", "l1", "smooth_l1")
"""The losses of each task (``engine.recipe.losses`` builds them; a run checks the pair before it
trains, ``engine.catalogue.preflight`` before any run starts)."""


class PretrainSpec(Strict):
    """A first training phase on another task before the run (see ``engine.techniques.pretrain``).

    The network's body (every hidden block) is trained on the pretraining task with its own
    output head; then the body's weights are carried over to the run's network, whose head keeps
    its fresh initialization, and the run trains (fine-tunes) as usual on its own data.
    The pretraining pool is the run's whole training split (before ``n_train``,
    ``train_fraction`` and ``n_unlabeled`` cut it), prepared with the run's fitted preprocessing;
    the validation and test splits are never seen.
    """

    task: Literal["transform", "labels"] = "transform"
    """`transform`: self-supervised, predict which of 4 transforms was applied to an input (images:
    rotation by 0/90/180/270 degrees; 1-D signals: identity, time reversal, negation, both);
    labels are not used. `labels`: supervised on the pool's own labels (see `classes`)."""
    classes: list[Annotated[int, Field(ge=0, lt=100)]] | None = None
    """`labels` only: keep just these classes in the pool (a related task, e.g. digits 0-4)."""
    n_pool: Samples | None = None
    """Use at most this many samples of the pool."""
    optimizer: Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"] = "adam"
    lr: Annotated[float, Field(gt=0.0)] = 1e-3
    batch_size: Samples = 100
    steps: Steps = 1000
    freeze_body: bool = False
    """Train only the new head in the main phase (a linear probe of the pretrained features)."""


class TrainSpec(Strict):
    """How the network is trained: optimizer, schedule, budget, penalties and the loss."""

    optimizer: Optimizer = "sgd"
    lr: Annotated[float, Field(gt=0.0)] = 0.05
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    """Used by momentum and nesterov (and rmsprop's optional momentum when rmsprop_momentum)."""
    dampening: Fraction = 0.0
    beta1: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    beta2: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.999
    alpha: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.99
    """RMSProp's decay rate of the squared-gradient average."""
    eps: Annotated[float, Field(gt=0.0)] = 1e-8
    rmsprop_momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    adagrad_lr_decay: Annotated[float, Field(ge=0.0)] = 0.0
    amsgrad: bool = False
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    """The optimizer's own weight decay (coupled for sgd/adam, decoupled for adamw)."""
    lbfgs_history: Annotated[int, Field(gt=0, le=1_000)] = 10
    lbfgs_max_iter: Annotated[int, Field(gt=0, le=10_000)] = 20
    lbfgs_line_search: bool = True

    schedule: Schedule = "constant"
    step_size: Steps = 1000
    """Steps between decays of the `step` schedule."""
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    """Decay factor: per step_size for `step`, per step for `exponential`."""
    decay: Annotated[float, Field(ge=0.0)] = 1e-3
    """`inverse_time`: lr / (1 + decay * step)."""
    min_lr: Annotated[float, Field(ge=0.0)] = 0.0
    plateau_patience: Steps = 5
    """Evaluations without val-loss improvement before `plateau` cuts the LR by gamma."""
    warmup_steps: StepCount = 0

    batch_size: SampleCount = 100
    """0 means full batch."""
    steps: Steps | None = None
    epochs: Annotated[int, Field(gt=0, le=MAX_EPOCHS)] | None = None
    """Budget: `steps` optimizer updates, or `epochs` passes over the training split."""

    loss: Loss = "cross_entropy"
    hinge_margin: Annotated[float, Field(gt=0.0)] = 1.0
    smooth_l1_beta: Annotated[float, Field(gt=0.0)] = 1.0
    l1: Annotated[float, Field(ge=0.0)] = 0.0
    l2: Annotated[float, Field(ge=0.0)] = 0.0
    """Penalties added to the loss: l1 * sum|w| + l2/2 * sum w^2 over weights (not biases)."""
    clip_norm: Annotated[float, Field(gt=0.0)] | None = None
    clip_value: Annotated[float, Field(gt=0.0)] | None = None
    early_stopping: bool = False
    patience: Steps = 10
    """Evaluations without val-loss improvement before early stopping ends the run."""
    restore_best: bool = True
    ema: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    """Decay of an exponential moving average of the weights, evaluated beside the raw weights."""
    mixup: Annotated[float, Field(ge=0.0)] = 0.0
    """Beta(alpha, alpha) mixing of input pairs and their targets; 0 turns it off."""

    seed: Seed = 0
    eval_every: Steps | None = None
    """Steps between evaluations (default: once per epoch, at most 50 evaluations)."""
    log_every: Steps = 10
    """Steps between step metrics read from the device (a host sync)."""
    diagnostics_every: Steps | None = None
    """Steps between per-layer diagnostics (default: every evaluation that is at least 50 steps
    after the last diagnosis; always at step 0 and at the end)."""
    diverge_threshold: Annotated[float, Field(gt=0.0)] = 1e6
    """A loss above this (or NaN/inf) ends the run as diverged."""
    lr_find: bool = False
    """Run the LR range test (``engine.diagnostics.lr_find``) on the initial weights before
    training and train at its suggested rate (`lr` is then replaced; the summary has `lr_found`)."""
    pretrain: PretrainSpec | None = None
    """A pretraining phase before this run (``engine.techniques.pretrain``); None trains from scratch."""
    augment: list[Literal["noise", "scale", "shift", "hflip", "negate", "cutout"]] = Field(default_factory=list)
    """Random transforms of every training batch, applied in this order on the device
    (``engine.techniques.augment``): gaussian noise, amplitude scaling, shift (1-D: circular roll; images:
    translate with zero fill), hflip (mirror / time reversal, p = ½), negate (p = ½), cutout."""
    augment_noise: Annotated[float, Field(ge=0.0)] = 0.1
    """`noise`: std of the gaussian noise added to every input value."""
    augment_scale: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    """`scale`: each sample is multiplied by a factor drawn from U(1 - s, 1 + s)."""
    augment_shift: Annotated[int, Field(ge=0, le=MAX_WIDTH)] = 2
    """`shift`: largest shift in steps (1-D signals) or pixels (images, in x and in y)."""
    augment_cutout: Width = 4
    """`cutout`: length of the zeroed segment (1-D) or side of the zeroed square (images)."""
    importance_weighting: bool = False
    """Covariate-shift correction (``engine.techniques.shift``): weight each training sample's loss by
    w(x) = p_test(x) / p_train(x), estimated by a logistic-regression domain classifier fitted on
    the training inputs against the (unlabelled) test inputs."""
    importance_clip: Annotated[float, Field(gt=0.0)] = 10.0
    """Largest importance weight before the weights are normalized to mean 1."""
    unlabeled_loss: Literal["none", "entropy", "pseudo_label", "consistency"] = "none"
    """Semi-supervised term on `data.n_unlabeled` unlabeled inputs (``engine.techniques.semisup``): entropy
    minimization, cross-entropy against the model's own confident predictions, or consistency
    (the same prediction for an input and a noisy copy of it)."""
    unlabeled_weight: Annotated[float, Field(ge=0.0)] = 1.0
    """Weight λ of the unlabeled term once ramped up."""
    unlabeled_rampup: StepCount = 0
    """Steps over which λ grows linearly from 0 to `unlabeled_weight` (0: full weight at once)."""
    pseudo_threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.95
    """`pseudo_label`: only predictions at least this confident become targets."""
    unlabeled_batch_size: SampleCount | None = None
    """Unlabeled inputs per step (default: batch_size; 0: the whole pool)."""
    unlabeled_noise: Annotated[float, Field(gt=0.0)] = 0.1
    """`consistency`: std of the gaussian noise added to the unlabeled inputs."""
    checkpoint_ensemble: Annotated[int, Field(ge=0, le=1_000)] = 0
    """Average the predictions of the last K snapshots of the weights, one taken every
    `checkpoint_every` evaluations (``engine.techniques.ensembles``; metrics `ckpt_ensemble_*`); 0: off."""
    checkpoint_every: Steps = 1
    """Evaluations between two checkpoint-ensemble snapshots."""
    gradcheck: bool = False
    """Instead of training, check the model's analytic gradients against centred differences
    (``engine.checks.gradcheck``) on `batch_size` training samples, dropout and penalties off."""
    gradcheck_layer: Literal["none", "custom", "broken"] = "none"
    """`gradcheck`: replace the first linear layer by a hand-written autograd layer whose backward is
    correct (`custom`) or deliberately wrong (`broken`: the bias gradient averaged over the batch)."""
    gradcheck_dtype: Literal["float64", "float32"] = "float64"
    """`gradcheck`: the precision of the check (the notes insist on float64)."""
    gradcheck_h: Annotated[float, Field(gt=0.0)] | None = None
    """`gradcheck`: the step h of (L(w + h) − L(w − h)) / 2h (default 1e-6 in float64, 1e-3 in float32)."""
    gradcheck_max_elements: Samples = 200
    """`gradcheck`: check at most this many entries of each parameter tensor (a seeded random subset)."""
    solo: bool = False
    """Always train this run alone, never in a batched group: its timings (sec_per_step,
    sec_per_epoch, wall_time) are then its own, as comparisons of speed need."""

    @model_validator(mode="after")
    def _one_budget(self) -> TrainSpec:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give either steps or epochs, not both")
        return self

    @property
    def uses_momentum(self) -> bool:
        return self.optimizer in ("momentum", "nesterov")


class Recipe(Strict):
    """data + model + train: everything one run needs."""

    data: DataSpec
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)


class RunSpec(Strict):
    """One resolved run: a recipe, the variant it belongs to, and where it came from."""

    recipe: Recipe
    variant: str
    preset: str = "custom"
    comparison: str = ""
    """An id shared by every run of one comparison (set by the runner)."""

    @property
    def seed(self) -> int:
        return self.recipe.train.seed

    @property
    def kind(self) -> Literal["network", "surface", "gradcheck"]:
        """What the run is: network training, a point on a 2-D test function (``data.name =
        "surface"``), or a gradient check of the model instead of training (``train.gradcheck``).
        The executor picks each kind's trainer (``engine.runs.executor.trainer_for``)."""
        if self.recipe.data.name == "surface":
            return "surface"
        return "gradcheck" if self.recipe.train.gradcheck else "network"

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> RunSpec:
        """The RunSpec a stored run was made from: its stored JSON also carries the library versions
        and the data's description (``engine.training.runbook.run_started``), which are not fields."""
        return cls.model_validate({k: v for k, v in data.items() if k in cls.model_fields})

    def key(self) -> str:
        """A short stable hash of the resolved recipe."""
        blob = json.dumps(self.recipe.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def deep_merge(base: dict, override: dict) -> dict:
    """Merge `override` into a copy of `base`, section by section (dicts merge, values replace)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


FIELD_SYNONYMS = {"learning_rate": "lr", "wd": "weight_decay", "bs": "batch_size", "batch": "batch_size",
                  "optim": "optimizer", "act": "activation", "dataset": "name", "layers": "hidden",
                  "hidden_sizes": "hidden", "n_steps": "steps", "num_epochs": "epochs"}
"""Names people often write for a field (from other libraries): where one is meant, say so."""


def section_spec(section: str) -> type[BaseModel]:
    """The schema of a recipe section: ``DataSpec``, ``ModelSpec`` or ``TrainSpec`` for "data",
    "model" or "train"."""
    return Recipe.model_fields[section].annotation  # type: ignore[return-value]


def section_fields(section: str) -> list[str]:
    """The fields of a recipe section, sorted."""
    return sorted(section_spec(section).model_fields)


def close_fields(name: str, allowed: list[str]) -> list[str]:
    """The fields of `allowed` that a mistyped `name` probably means (at most two; none: no guess)."""
    if FIELD_SYNONYMS.get(name) in allowed:
        return [FIELD_SYNONYMS[name]]
    return difflib.get_close_matches(name, allowed, n=2, cutoff=0.6)
