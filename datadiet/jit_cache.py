"""The persistent XLA compilation cache: the runs of one job (tuning trials, an experiment's
retrainings) compile the same programs; kept on disk, each is compiled once, also across
restarts. Hyper-parameters are data in the train step (training/optim.py), so trials that
differ only in their values share its program. Its entries are found again only through the same
path: JAX puts the directory's path into every key (it names XLA's own caches inside it), so a
copied cache misses everywhere (seen here with jax 0.10.2). Of several processes of one job,
only process 0 writes it; the others read."""
import jax


def use_compilation_cache(directory):
    """Caches every compiled program in `directory`, unless the process already has a cache
    directory (JAX sets its cache up once: the first directory stays)."""
    if jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
