# One image for the web app and the worker (docker-compose.yml runs both against PostgreSQL).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dsgen_core ./dsgen_core
COPY app.py server.py ./
COPY pages ./pages
COPY .streamlit ./.streamlit
RUN pip install --no-cache-dir -e .
ENV DSGEN_HOME=/data
EXPOSE 8501
CMD ["dsgen", "serve", "--no-worker", "--port", "8501"]
