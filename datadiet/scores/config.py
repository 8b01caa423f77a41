"""The `scores` config section, its validation, and the score files it asks for."""
import ml_collections

FORWARD_SCORES = ("el2n", "loss", "entropy", "margin")  # from one eval-mode forward pass
EPOCH_SCORES = FORWARD_SCORES + ("grand",)
RUN_SCORES = ("forgetting", "aum", "dyn_unc")  # over the whole run
SCORES = EPOCH_SCORES + RUN_SCORES + ("input_norm",)


def default_scores_config():
    c = ml_collections.ConfigDict()
    c.names = ("el2n", "grand", "forgetting", "input_norm")  # any of SCORES
    c.epochs = (0, 1)  # epoch-wise scores are taken after these many epochs (0 = at init)
    c.num_seeds = 3  # seeds config.seed, config.seed + 1, ...
    c.chunk_size = 256  # examples per jitted forward chunk
    c.grand_chunk_size = 64  # examples per jitted per-example-gradient chunk
    c.dyn_unc_window = 2  # dyn_unc: J consecutive epochs per window
    c.embeddings = -1  # save the penultimate embeddings after this epoch (-1: not saved)
    return c


def validate_scores_config(s):
    """The section alone; what it needs of the other sections is checked in datadiet/config.py."""
    bad = [n for n in s.names if n not in SCORES]
    if bad or not s.names:
        raise ValueError(f"scores.names={tuple(s.names)} must be a non-empty selection of "
                         f"{list(SCORES)}")
    if s.num_seeds < 1:
        raise ValueError(f"scores.num_seeds={s.num_seeds} must be >= 1")


def score_file_names(scores_cfg):
    epoch_wise = [n for n in scores_cfg.names if n in EPOCH_SCORES]
    names = [f"{n}_epoch{int(t)}" for n in epoch_wise for t in scores_cfg.epochs]
    return names + [n for n in RUN_SCORES + ("input_norm",) if n in scores_cfg.names]
