"""Embedded local stack (moto, fakesnow, MySQL/MariaDB) for laptops and CI: no docker, no internet."""
