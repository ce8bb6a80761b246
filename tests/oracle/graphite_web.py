#!/usr/bin/python3
"""Real graphite-web 1.1.8 (Debian's graphite-web package) over a whisper dir,
for the differential /render tests (tests/it/render_diff.rs).

    /usr/bin/python3 tests/oracle/graphite_web.py --whisper-dir DIR --work-dir DIR

Writes a settings module into the work dir (UTC, DEFAULT_XFILES_FACTOR 0,
WHISPER_DIR = the given dir, no carbonlink, sqlite and logs in the work dir,
the local tag DB), runs Django's migrations in-process, and serves the app
with Django's own development server classes, threaded, exactly what
`django-admin runserver --noreload` runs, but in this one process (one Django
import instead of two) and on a port the kernel picks (bound to port 0, so
there is no race for a "free" port). Once `/version` answers it prints

    listening graphite-web 127.0.0.1:PORT

on stdout and serves until stdin closes (its parent died or closed it) or it
is killed. Nothing under /etc is read or written.
"""

import argparse
import os
import socketserver
import sys
import threading
import time
import urllib.request

SETTINGS = '''\
SECRET_KEY = 'instantops-test-only'
TIME_ZONE = 'UTC'
LOG_ROTATION = False
DEFAULT_XFILES_FACTOR = 0
GRAPHITE_ROOT = '/usr/share/graphite-web'
STATIC_ROOT = '/usr/share/graphite-web/static'
CONF_DIR = {work!r} + '/conf'
STORAGE_DIR = {work!r} + '/storage'
LOG_DIR = {work!r} + '/log'
INDEX_FILE = {work!r} + '/storage/index'
WHISPER_DIR = {whisper!r}
STANDARD_DIRS = [{whisper!r}]
# No carbon: graphite-web reads only the whisper files. (An empty list makes
# each fetch's carbonlink query fail at once, caught and logged, instead of
# waiting on a connection.)
CARBONLINK_HOSTS = []
TAGDB = 'graphite.tags.localdatabase.LocalDatabaseTagDB'
DATABASES = {{'default': {{'NAME': {work!r} + '/storage/graphite.db', 'ENGINE': 'django.db.backends.sqlite3'}}}}
ALLOWED_HOSTS = ['*']
FUNCTION_PLUGINS = []

# Python 3.11 removed inspect.getargspec, which graphite-web 1.1.8 uses for /functions
import inspect as _inspect
if not hasattr(_inspect, 'getargspec'):
    from collections import namedtuple as _nt
    _ArgSpec = _nt('ArgSpec', 'args varargs keywords defaults')
    def _getargspec(f):
        s = _inspect.getfullargspec(f)
        return _ArgSpec(s.args, s.varargs, s.varkw, s.defaults)
    _inspect.getargspec = _getargspec
if not hasattr(_inspect, 'formatargspec'):
    def _formatargspec(args, varargs=None, varkw=None, defaults=None, *a, **k):
        specs = []
        first_default = len(args) - len(defaults) if defaults else len(args)
        for i, arg in enumerate(args):
            spec = str(arg)
            if defaults and i >= first_default:
                spec += '=' + repr(defaults[i - first_default])
            specs.append(spec)
        if varargs is not None:
            specs.append('*' + varargs)
        if varkw is not None:
            specs.append('**' + varkw)
        return '(' + ', '.join(specs) + ')'
    _inspect.formatargspec = _formatargspec
'''

MODULE = 'iops_graphite_settings'


def die_with_stdin():
    """Exits the whole process when stdin reaches EOF (the parent is gone)."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--whisper-dir', required=True)
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--host', default='127.0.0.1')
    args = parser.parse_args()
    started = time.monotonic()

    whisper = os.path.abspath(args.whisper_dir)
    work = os.path.abspath(args.work_dir)
    for sub in ('conf', 'storage', 'log'):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    os.makedirs(whisper, exist_ok=True)
    with open(os.path.join(work, MODULE + '.py'), 'w') as f:
        f.write(SETTINGS.format(work=work, whisper=whisper))

    threading.Thread(target=die_with_stdin, daemon=True).start()

    sys.path.insert(0, work)
    os.environ['GRAPHITE_SETTINGS_MODULE'] = MODULE
    os.environ['DJANGO_SETTINGS_MODULE'] = 'graphite.settings'

    import django
    from django.core.management import call_command
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer, get_internal_wsgi_application

    django.setup()
    call_command('migrate', interactive=False, verbosity=0)

    class Quiet(WSGIRequestHandler):
        # Headers and body go out in separate writes: with Nagle's algorithm
        # on, each keep-alive request waits ~40 ms on the client's delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

    # What runserver builds with threading on.
    server_cls = type('WSGIServer', (socketserver.ThreadingMixIn, WSGIServer), {'daemon_threads': True})
    httpd = server_cls((args.host, 0), Quiet, ipv6=False)
    httpd.set_app(get_internal_wsgi_application())
    addr = '%s:%d' % httpd.server_address[:2]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    with urllib.request.urlopen('http://%s/version' % addr, timeout=30) as r:
        version = r.read().decode().strip()
    sys.stderr.write('graphite-web %s ready in %.2f s\n' % (version, time.monotonic() - started))
    sys.stdout.write('listening graphite-web %s\n' % addr)
    sys.stdout.flush()
    while True:
        time.sleep(3600)


if __name__ == '__main__':
    main()
