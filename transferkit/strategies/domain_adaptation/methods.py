"""The method names (no heavy imports: the CLI and the registry read them at start-up)."""

#: shallow methods on frozen embeddings (:mod:`.shallow`)
SHALLOW_METHODS = ("source-only", "coral", "subspace", "tca", "reweight")
#: deep methods trained end to end (:mod:`.deep`); ``deep-source-only`` is their baseline
DEEP = ("deep-source-only", "dann", "cdan", "deep-coral", "mmd")
