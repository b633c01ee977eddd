# shellcheck shell=bash
# nginx_demo_conf: the node's /etc/nginx/nginx.conf as written by the agent, with only what must differ on this
# Debian host changed: Debian's stream module path, no `user nginx;` (Debian has no nginx user), pid and error log
# under the node root, one worker process (2 shared cores). Prints the path of the adjusted copy.
nginx_demo_conf() {
  local src; src=$(rootp /etc/nginx/nginx.conf)
  [ -f "$src" ] || fail "/etc/nginx/nginx.conf is missing in the node root"
  mkdir -p "$KHD_ROOT/run/kubeha-demo/nginx/logs" "$KHD_ROOT/var/log/nginx"
  local out="$KHD_ROOT/run/kubeha-demo/nginx/nginx.conf"
  sed -e 's#^load_module /usr/lib64/nginx/modules/ngx_stream_module.so;#load_module /usr/lib/nginx/modules/ngx_stream_module.so;#' \
      -e '/^user /d' \
      -e "s#^pid /run/nginx.pid;#pid $KHD_ROOT/run/nginx.pid;#" \
      -e "s#^error_log /var/log/nginx/#error_log $KHD_ROOT/var/log/nginx/#" \
      -e 's#^worker_processes auto;#worker_processes 1;#' "$src" > "$out"
  grep -q 'ngx_stream_module' "$out" || fail "nginx.conf loads no stream module"
  echo "$out"
}
nginx_flags() { echo -p "$KHD_ROOT/run/kubeha-demo/nginx" -e "$KHD_ROOT/var/log/nginx/error.log"; }
