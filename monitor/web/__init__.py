"""The local web page and its API (``voice-monitor serve``) and the HTML report (``voice-monitor report``).

Only routes, the WebSocket, Server-Sent Events and static files live here: scoring is the batch scorer's
(monitor.batch), live sessions are the live monitor's Pipeline (monitor.pipeline). Nothing in this package is
imported by ``monitor`` itself; the server needs the ``web`` extra (Starlette, uvicorn, python-multipart), the
report needs nothing beyond the standard library.
"""
