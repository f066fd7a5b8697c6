FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY connectors ./connectors
COPY metrics ./metrics
COPY migrations ./migrations
COPY bench ./bench
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["truce", "serve", "--host", "0.0.0.0", "--port", "8000"]
