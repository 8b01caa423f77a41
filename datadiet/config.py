"""The base config every file in configs/ starts from, and its up-front validation."""
import ml_collections

from datadiet.data import default_data_config, validate_data_config


JOBS = ("train", "scores", "tune")


def default_config():
    c = ml_collections.ConfigDict()
    c.job = "train"  # train: one run (optionally pruned / coreset); scores: the scores job;
    # tune: hyper-parameter search (the hpo section), then the best retrained on all data
    c.seed = 0
    c.data = default_data_config()
    c.model = ml_collections.ConfigDict({"name": "small_cnn", "kwargs": {}})
    c.optim = _default_optim()
    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 128
    c.train.epochs = -1.0  # set exactly one of epochs / steps
    c.train.steps = -1
    c.train.iteration_matched = True  # subsets train as many steps as the full data would
    c.train.eval_every_epochs = 1
    c.train.checkpoint_every_epochs = 1
    c.train.eval_batch_size = 1000
    c.train.max_checkpoints = 2
    c.coreset = _default_coreset()
    c.prune = _default_prune()
    c.scores = _default_scores()
    c.sampling = _default_sampling()
    c.hpo = _default_hpo()
    c.log = ml_collections.ConfigDict({"progress": True, "tensorboard": True})
    return c


def _default_optim():
    from datadiet.training.optim import default_optim_config
    return default_optim_config()


def _default_coreset():
    from datadiet.coresets.selector import default_coreset_config
    return default_coreset_config()


def _default_prune():
    from datadiet.prune import default_prune_config
    return default_prune_config()


def _default_scores():
    from datadiet.scores import default_scores_config
    return default_scores_config()


def _default_sampling():
    from datadiet.sampling import default_sampling_config
    return default_sampling_config()


def _default_hpo():
    from datadiet.hpo import default_hpo_config
    return default_hpo_config()


def validate_config(config):
    """Every field checked before data is loaded or anything is compiled."""
    from datadiet.models import MODELS
    from datadiet.training.optim import validate_optim_config

    if config.job not in JOBS:
        raise ValueError(f"job={config.job!r} is not one of {list(JOBS)}")
    validate_data_config(config.data)
    validate_optim_config(config.optim)
    from datadiet.coresets.selector import validate_coreset_config
    validate_coreset_config(config.coreset)
    from datadiet.prune import validate_prune_config
    validate_prune_config(config.prune)
    from datadiet.sampling import validate_sampling_config
    validate_sampling_config(config.sampling, config.train.batch_size)
    chosen = [f"{name}.method={config[name].method!r}" for name in ("prune", "coreset", "sampling")
              if config[name].method != "none"]
    if len(chosen) > 1:
        raise ValueError(f"{' and '.join(chosen)}: choose one way to pick the training examples "
                         "(the others stay 'none')")
    from datadiet.scores.job import validate_scores_config
    validate_scores_config(config)
    if config.model.name not in MODELS:
        raise ValueError(f"model.name={config.model.name!r} is not one of {sorted(MODELS)}")
    from datadiet.models import model_options
    options = model_options(config.model.name)
    unknown = sorted(set(config.model.kwargs) - set(options))
    if unknown:
        raise ValueError(f"model.kwargs.{unknown[0]}: unknown option for model.name="
                         f"{config.model.name!r}; accepted: {sorted(options)}")
    vocab = config.model.kwargs.get("vocab_size", options.get("vocab_size"))
    if config.model.name == "embedding_bag" and vocab < config.data.text_vocab:
        raise ValueError(f"model.kwargs.vocab_size={vocab} must be >= data.text_vocab="
                         f"{config.data.text_vocab} (the tokenizer's ids)")
    from datadiet.hpo import validate_hpo_config
    validate_hpo_config(config.hpo, config)
    if config.job == "tune":
        if not config.hpo.space:
            raise ValueError("job='tune' needs a search space: hpo.space is empty")
        if chosen:
            raise ValueError(f"job='tune': {chosen[0]} must be 'none'; hpo.evaluation chooses "
                             "each trial's training examples")
    t = config.train
    if t.batch_size <= 0:
        raise ValueError(f"train.batch_size={t.batch_size} must be > 0")
    if (t.epochs > 0) == (t.steps > 0):
        raise ValueError(f"set exactly one of train.epochs={t.epochs} and train.steps={t.steps} "
                         "(the other stays -1)")
    for field in ("eval_every_epochs", "checkpoint_every_epochs", "eval_batch_size",
                  "max_checkpoints"):
        if t[field] <= 0:
            raise ValueError(f"train.{field}={t[field]} must be > 0")
