from setuptools import find_packages, setup

setup(
    name="sf_platform",
    version="0.1.0",
    description="S3 -> Glue catalog -> MySQL / Snowflake data platform on Dagster",
    packages=find_packages(exclude=["sf_platform_tests", "sf_platform_tests.*"]),
    package_data={"sf_platform": ["py.typed"]},
    python_requires=">=3.11",
    install_requires=[
        "dagster>=1.13",
        "dagster-webserver>=1.13",
        "dagster-graphql>=1.13",
        "dagster-aws>=0.29",
        "dagster-snowflake>=0.29",
        "dagster-pandas>=0.29",
        "pandas>=2.2",
        "pyarrow>=18",
        "fastavro>=1.9",
        "pymysql>=1.1",
        "boto3>=1.35",
        "pyyaml>=6",
        "python-dotenv>=1.0",
        "duckdb>=1.1",
        # The curated hub: Iceberg tables in the Glue catalog (sf_platform/hub). Exact pin: the hub uses
        # a few private helpers (_dataframe_to_data_files, ArrowScan) and guards a 0.12 decimal-scale bug.
        "pyiceberg[glue,pyarrow]==0.12.0",
        "requests>=2.31",
        "snowflake-connector-python>=3.12",
        # The embedded local stack is part of the product (`sf-platform stack up`), not only of tests.
        "moto[server]>=5.0",
        "fakesnow[server]>=0.12",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "hypothesis>=6.100",
            "ruff>=0.6",
            # The browser test drives Debian's chromium through Debian's chromedriver (same version).
            "selenium==4.51.0",
        ],
        # Production deployment: instance storage on PostgreSQL, the Celery and Kubernetes executors
        # (SF_EXECUTOR, sf_platform/deployments.py). Not needed for the local stack.
        "deploy": [
            "dagster-postgres>=0.29",
            "psycopg2-binary>=2.9",
            "dagster-celery>=0.29",
            "dagster-k8s>=0.29",
            "dagster-celery-k8s>=0.29",
        ],
        "bench": [
            "tpchgen-cli>=1.0",
            "dlt[sqlalchemy]>=1.0",
            "sqlalchemy>=2.0",
        ],
    },
    entry_points={"console_scripts": ["sf-platform=sf_platform.cli:main"]},
)
