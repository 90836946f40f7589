"""Self-test of the shared edit positions rule (pure Python): `training/py -m dialect_tar.test_positions`."""
from dialect_tar.positions import EditPositions

TURN, USER, ASSISTANT, NL, IM_START, IM_END, CHAT_END = 1, 2, 3, 4, 5, 6, 7
S1, S2, S3 = 11, 12, 13
BASE = 100
rule = EditPositions(TURN, [TURN, ASSISTANT, NL], IM_START, [S1, S2, S3], BASE, 50)


def image(scale_token, codes):
    return [IM_START, scale_token] + [BASE + c for c in codes] + [IM_END]


def user(*body):
    return [TURN, USER, NL, *body, CHAT_END, NL]


def main():
    text = [30, 31, 32]
    # an edit at one scale: the answer's image tokens take the input image's positions, the rest their indices
    prompt = user(*image(S2, [1, 2, 3, 4]), NL, *text) + [TURN, ASSISTANT, NL, IM_START, S2]
    answer = [BASE + 9, BASE + 8, BASE + 7, BASE + 6, IM_END]
    pos = rule(prompt + answer)
    first_input = prompt.index(BASE + 1)
    assert pos[len(prompt):len(prompt) + 4] == list(range(first_input, first_input + 4)), pos
    assert pos[:len(prompt)] == list(range(len(prompt)))
    assert pos[-1] == len(prompt) + 4                      # <im_end> keeps its index
    assert rule(prompt + answer[:2])[-1] == first_input + 1  # while decoding: the next token's position
    # another scale, a text answer, or an image in a user turn: positions are the indices
    other = user(*image(S3, [1, 2, 3, 4]), NL, *text) + [TURN, ASSISTANT, NL, IM_START, S2] + answer
    assert rule(other) == list(range(len(other)))
    chat = user(*image(S2, [1, 2, 3, 4]), NL, *text) + [TURN, ASSISTANT, NL, 40, 41, CHAT_END, NL]
    assert rule(chat) == list(range(len(chat)))
    second_user = prompt + answer + [CHAT_END, NL] + user(*image(S2, [5, 6, 7, 8]), NL, *text)
    assert rule(second_user)[len(prompt) + len(answer) + 2:] == list(range(len(prompt) + len(answer) + 2,
                                                                             len(second_user)))
    # a generation (no image in the user turn) does not look further back
    gen = second_user[:len(prompt) + len(answer) + 2] + user(*text) + [TURN, ASSISTANT, NL, IM_START, S2, BASE]
    assert rule(gen)[-1] == len(gen) - 1
    # the next edit in the conversation shares the positions of the image its own user turn gives
    chain = prompt + answer + [CHAT_END, NL] + user(*image(S2, [9, 8, 7, 6]), NL, *text) + \
        [TURN, ASSISTANT, NL, IM_START, S2, BASE + 1]
    second_input = len(prompt) + len(answer) + 2 + 3 + 2
    assert chain[second_input] == BASE + 9
    assert rule(chain)[-1] == rule(chain)[second_input] == second_input
    print("edit positions selftest ok")


if __name__ == "__main__":
    main()
