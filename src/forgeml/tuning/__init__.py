"""``forgeml tune``: a hyperparameter search on Optuna whose trials are ordinary runs.

* :func:`forgeml.tuning.search.tune_study` checks the search space (:mod:`~forgeml.tuning.space`), opens the study's storage
  (:mod:`~forgeml.tuning.study`), runs this process's worker and ``--jobs - 1`` more, then writes
  ``runs/<name>/tune/``: ``best.yaml`` (a full config ``forgeml run`` accepts), ``leaderboard.csv``
  and ``report.html`` (:mod:`~forgeml.tuning.report`).
* Trials are compared on the validation split only; the test split is scored once, for the best
  trial, after the search.

The package sits above training and evaluation and below :mod:`forgeml.api`, which hands it the
``train`` and ``evaluate`` verbs (:class:`~forgeml.tuning.study.Verbs`). Importing the package
imports nothing: ``forgeml tune --help`` builds its flags from :mod:`~forgeml.tuning.options` without torch.
"""
