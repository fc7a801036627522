#!/usr/bin/env bash
# Refresh the browser assets vendored under src/xietong/web/static/vendor from the npm
# registry. They are committed: nothing is fetched at run time and no page uses a CDN.
set -euo pipefail
HTMX=2.0.11
SWAGGER=5.35.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work" --no-audit --no-fund "htmx.org@$HTMX" "swagger-ui-dist@$SWAGGER" >/dev/null
dest=src/xietong/web/static/vendor
cp "$work/node_modules/htmx.org/dist/htmx.min.js" "$dest/htmx-$HTMX.min.js"
cp "$work/node_modules/htmx.org/LICENSE" "$dest/htmx-LICENSE"
mkdir -p "$dest/swagger-ui"
cp "$work/node_modules/swagger-ui-dist/"{swagger-ui-bundle.js,swagger-ui.css,LICENSE} "$dest/swagger-ui/"
echo "vendored htmx $HTMX and swagger-ui $SWAGGER"
