"""Datastores: where and how a repository's datasets live (see :mod:`butler.datastore.base`)."""
