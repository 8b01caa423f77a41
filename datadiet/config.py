"""The base config every file in configs/ starts from: the sections' leaf configs assembled,
and the checks that span sections. Only entry points (train.py, datadiet/jobs/, experiments)
import this module; the library is handed what it needs."""
import ml_collections

from datadiet.coresets.config import default_coreset_config, validate_coreset_config
from datadiet.data import default_data_config, sources, validate_data_config
from datadiet.hpo.config import default_hpo_config, validate_hpo_config
from datadiet.models import MODELS, model_options
from datadiet.models.config import default_model_config, validate_model_config
from datadiet.prune.config import default_prune_config, validate_prune_config
from datadiet.sampling.config import default_sampling_config, validate_sampling_config
from datadiet.scores.config import default_scores_config, validate_scores_config
from datadiet.training.config import (default_log_config, default_train_config,
                                      validate_train_config)
from datadiet.training.optim import default_optim_config, validate_optim_config

JOB_NAMES = ("train", "scores", "tune")
SELECTION_SECTIONS = ("prune", "coreset", "sampling")  # the ways to pick training examples


def default_config():
    c = ml_collections.ConfigDict()
    c.job = "train"  # train: one run (optionally pruned / coreset); scores: the scores job;
    # tune: hyper-parameter search (the hpo section), then the best retrained on all data
    c.seed = 0
    c.data = default_data_config()
    c.model = default_model_config()
    c.optim = default_optim_config()
    c.train = default_train_config()
    c.coreset = default_coreset_config()
    c.prune = default_prune_config()
    c.scores = default_scores_config()
    c.sampling = default_sampling_config()
    c.hpo = default_hpo_config()
    c.log = default_log_config()
    return c


SEED_MAX = 2**31 - 1  # numpy and JAX both take seeds in [0, 2^31)


def validate_config(config):
    """Every field checked before data is loaded or anything is compiled."""
    if config.job not in JOB_NAMES:
        raise ValueError(f"job={config.job!r} is not one of {list(JOB_NAMES)}")
    _validate_seeds(config)
    validate_data_config(config.data)
    validate_optim_config(config.optim)
    validate_coreset_config(config.coreset)
    validate_prune_config(config.prune)
    validate_sampling_config(config.sampling, config.train.batch_size)
    chosen = [f"{name}.method={config[name].method!r}" for name in SELECTION_SECTIONS
              if config[name].method != "none"]
    if len(chosen) > 1:
        raise ValueError(f"{' and '.join(chosen)}: choose one way to pick the training examples "
                         "(the others stay 'none')")
    if config.data.pipeline == "host" and config.sampling.method != "none":
        # the streaming step draws its ids and gathers the batch on device in one jitted step
        raise ValueError(f"data.pipeline='host' does not support sampling.method="
                         f"{config.sampling.method!r} (streaming samplers gather on device): "
                         "use data.pipeline='device'")
    validate_scores_config(config.scores)
    if config.job == "scores":
        _validate_scores_job(config)
    _validate_model(config)
    validate_hpo_config(config.hpo, config, validate_config)
    if config.job == "tune":
        if not config.hpo.space:
            raise ValueError("job='tune' needs a search space: hpo.space is empty")
        if chosen:
            raise ValueError(f"job='tune': {chosen[0]} must be 'none'; hpo.evaluation chooses "
                             "each trial's training examples")
    validate_train_config(config.train)
    sizes = sources.peek_sizes(config.data)
    if sizes is not None:
        validate_sizes(config, sizes[0])


def _validate_seeds(config):
    seeds = {"seed": config.seed, "hpo.seed": config.hpo.seed,
             "data.label_noise_seed": config.data.label_noise_seed, "prune.seed": config.prune.seed}
    for field, value in seeds.items():
        lowest = 0 if field in ("seed", "hpo.seed") else -1  # -1: use config.seed
        if isinstance(value, bool) or int(value) != value or not lowest <= value <= SEED_MAX:
            raise ValueError(f"{field}={value!r} must be a whole number in [{lowest}, {SEED_MAX}]"
                             + (" (-1: config.seed)" if lowest < 0 else ""))


def validate_sizes(config, n):
    """The checks that need the training set's size n: before anything loads, from the files'
    headers (validate_config); for a TFDS source, whose size only its loaded data tells, by
    the jobs right after loading (`check_loaded`)."""
    where = f"the {n} training examples of data.source={config.data.source!r}"
    if config.job == "tune":  # trials train on what the held-out split leaves
        held = max(1, round(config.hpo.val_fraction * n))
        if held >= n:
            raise ValueError(f"hpo.val_fraction={config.hpo.val_fraction} holds out {held} of "
                             f"{where}: none are left to train on")
    c = config.coreset
    if c.method != "none" and c.target == "val":
        held = round(c.val_fraction * n)
        if not 1 <= held < n:
            raise ValueError(f"coreset.val_fraction={c.val_fraction} holds out {held} of {where}; "
                             "it must hold out at least one and leave at least one")
    if config.train.batch_size > n:
        raise ValueError(f"train.batch_size={config.train.batch_size} is larger than {where} "
                         f"(every step would be mostly padding); accepted: 1..{n}")
    if config.prune.method != "none" and round(config.prune.keep * n) < 1:
        raise ValueError(f"prune.keep={config.prune.keep} keeps no example of {where}; "
                         f"accepted: [{0.5 / n:.3g}, 1]")
    if c.method not in ("none", "full") and round(c.fraction * n) < 1:
        raise ValueError(f"coreset.fraction={c.fraction} selects no example of {where}; "
                         f"accepted: [{0.5 / n:.3g}, 1]")


def check_loaded(config, dataset):
    """validate_sizes on the loaded dataset: the first time for a TFDS source (its files could
    not tell its size earlier), a no-op repeat of validate_config's for the others."""
    validate_sizes(config, dataset.n_train)


def _validate_scores_job(config):
    s, epochs = config.scores, config.train.epochs
    if epochs <= 0 or epochs != int(epochs):
        raise ValueError(f"train.epochs={epochs} must be a whole number of epochs for the "
                         "scores job (scores are taken at epoch ends)")
    if not s.epochs or any(int(t) != t or not 0 <= t <= epochs for t in s.epochs):
        raise ValueError(f"scores.epochs={tuple(s.epochs)} must be whole epochs in "
                         f"[0, train.epochs={int(epochs)}]")
    if "dyn_unc" in s.names and not 2 <= s.dyn_unc_window <= epochs:
        raise ValueError(f"scores.dyn_unc_window={s.dyn_unc_window} must be in [2, "
                         f"train.epochs={int(epochs)}]")
    if s.embeddings != -1 and (int(s.embeddings) != s.embeddings
                               or not 0 <= s.embeddings <= epochs):
        raise ValueError(f"scores.embeddings={s.embeddings} must be -1 (off) or a whole epoch "
                         f"in [0, train.epochs={int(epochs)}]")
    if config.coreset.method != "none" or config.prune.method != "none":
        raise ValueError("the scores job trains on the full data: set coreset.method and "
                         "prune.method to 'none'")


def _validate_model(config):
    if config.model.name not in MODELS:
        raise ValueError(f"model.name={config.model.name!r} is not one of {sorted(MODELS)}")
    options = model_options(config.model.name)
    unknown = sorted(set(config.model.kwargs) - set(options))
    if unknown:
        raise ValueError(f"model.kwargs.{unknown[0]}: unknown option for model.name="
                         f"{config.model.name!r}; accepted: {sorted(options)}")
    for name, value in config.model.kwargs.items():
        default = options[name]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if (numeric and (isinstance(value, bool) or not isinstance(value, (int, float)))) or (
                isinstance(default, (bool, str)) and type(value) is not type(default)):
            raise ValueError(f"model.kwargs.{name}={value!r} must be a {type(default).__name__} "
                             f"like its default {default!r}")
    validate_model_config(config.model)
    vocab = config.model.kwargs.get("vocab_size", options.get("vocab_size"))
    if config.model.name == "embedding_bag" and vocab < config.data.text_vocab:
        raise ValueError(f"model.kwargs.vocab_size={vocab} must be >= data.text_vocab="
                         f"{config.data.text_vocab} (the tokenizer's ids)")
