"""The remote Butler (issue 16): a server for repositories and a client with the Butler's API.

- :mod:`butler.remote.wire`: the JSON of the API (tagged values, errors by class name);
- :mod:`butler.remote.tokens`: Bearer tokens, stored as hashes, read or write per repository;
- :mod:`butler.remote.models`, :mod:`butler.remote.streams`, :mod:`butler.remote.server`:
  the FastAPI application (``butler serve``), server side only;
- :mod:`butler.remote.session`, :mod:`butler.remote.client`: the httpx client, which
  ``Butler("http://host:port/repos/name")`` returns.

Importing this package imports neither httpx nor FastAPI. See docs/remote.md.
"""
