"""Password hashing (scrypt through Werkzeug)."""
from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str, password: str) -> bool:
    return check_password_hash(password_hash, password)


# Compared against when the email is unknown, so a miss costs as much time as a hit
# and response times do not reveal which accounts exist.
DUMMY_HASH = hash_password("not-a-real-password-0000")
