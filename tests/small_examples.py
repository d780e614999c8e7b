"""A small six-task example set shared by the projection and correction tests."""

EXAMPLES = {
    "code": [
        "fix this python function that raises KeyError",
        "write a bash script to rename files",
        "why does my javascript promise never resolve",
        "refactor this java class to use interfaces",
        "write a sql query joining orders and customers",
        "my rust code fails to compile with a borrow error",
        "write a regex that matches email addresses",
        "debug this segfault in my c program",
    ],
    "math": [
        "solve for x: 3x + 7 = 22",
        "what is the derivative of x^3 sin x",
        "integrate 1/(1+x^2) from 0 to 1",
        "prove that the square root of 2 is irrational",
        "compute the eigenvalues of a 2x2 matrix",
        "what is the probability of two sixes with two dice",
        "simplify (x^2 - 1)/(x - 1)",
        "find the sum of the first 100 integers",
    ],
    "creative": [
        "write a poem about the autumn sea",
        "write a short story about a lonely robot",
        "compose song lyrics about summer love",
        "write a haiku about rain on a tin roof",
        "invent a fairy tale about a clever fox",
        "write a limerick about a cat who codes",
        "draft a sonnet about the city at night",
        "write a scary two-sentence horror story",
    ],
    "factual": [
        "who invented the telephone",
        "what is the capital of australia",
        "when did the berlin wall fall",
        "how tall is mount everest",
        "who wrote pride and prejudice",
        "what is the boiling point of water in fahrenheit",
        "which planet has the most moons",
        "what year did the titanic sink",
    ],
}
