# Turns the production Nginx site (deploy/nginx/daedalus.conf) into the one
# for the compose stack: Nginx listens on 80 inside its container (published
# as 22181) and reaches the API by its service name. Used by deploy/Dockerfile
# and checked with `nginx -t` by deploy/check.sh.
s/listen 22181;/listen 80;/
s/listen \[::\]:22181;/listen [::]:80;/
s/server 127\.0\.0\.1:8000;/server api:8000;/
