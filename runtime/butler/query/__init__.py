"""The query expression language: ``where="visit > 903334 AND filter IN ('r', 'i')"``.

Stages, each a module with one job: :mod:`~butler.query.syntax` (text → tree, the
grammar in ``grammar.lark``), :mod:`~butler.query.check` (tree → a checked
:class:`~butler.query.predicate.Predicate` against one dataset type's keys, values
normalized), :mod:`~butler.query.sql` (predicate → one SQLAlchemy expression, run by
the registry) and :mod:`~butler.query.run` (what ``Butler.query`` does, chains
included). Nothing is imported here, so the registry can use the predicates without
loading the parser.
"""
