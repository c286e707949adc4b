# The app's image: the same commands as the Procfile (web, worker, beat), one image for all three.
# Docker cannot run on this project's build machines; tests run these commands directly instead.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are hashed and compressed at build time; whitenoise serves them. Settings refuse to
# load without secrets, so the build uses throw-away ones that never reach the running container.
RUN SECRET_KEY=build-only PIPEDRIVE_CLIENT_ID=build-only PIPEDRIVE_CLIENT_SECRET=build-only \
    TOKEN_ENCRYPTION_KEYS="$(python -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')" \
    python manage.py collectstatic --no-input

RUN useradd --create-home --uid 10001 app
USER app

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"
CMD ["gunicorn", "pipedrive_app.wsgi:application", "-c", "gunicorn.conf.py"]
