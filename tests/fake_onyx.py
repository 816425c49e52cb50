"""A FakeNOS NOS plugin speaking NVIDIA Onyx's CLI modes (FakeNOS ships none),
for tests/test_nos_fakenos.py: the login, enable and config prompts, a
port-channel's and a VLAN's sub-modes, and ``exit`` leaving whichever mode it is given in
(sub-mode -> config -> enable -> closed), as netmiko's mellanox_mlnxos session
and laghil's Onyx lines use them. Every other command is the test's to load."""

NAME = "onyx"
DEVICE_NAME = "Onyx"
INITIAL_PROMPT = "{base_prompt} [standalone: master] >"
ENABLE_PROMPT = "{base_prompt} [standalone: master] #"
CONFIG_PROMPT = "{base_prompt} [standalone: master] (config) #"
SUB_PROMPT = "{base_prompt} [standalone: master] (config interface port-channel {n}) #"
VLAN_PROMPT = "{base_prompt} [standalone: master] (config vlan {n}) #"


class Onyx:
    def __init__(self, configuration_file=None):
        self.configuration_file = configuration_file

    def make_exit(self, base_prompt, current_prompt, command):
        config = CONFIG_PROMPT.format(base_prompt=base_prompt)
        enable = ENABLE_PROMPT.format(base_prompt=base_prompt)
        if "(config " in current_prompt:           # a sub-mode: interface, vlan
            return {"output": "", "new_prompt": CONFIG_PROMPT}
        if current_prompt == config:
            return {"output": "", "new_prompt": ENABLE_PROMPT}
        if current_prompt == enable:
            return True
        return True


commands = {
    "enable": {"output": None, "new_prompt": ENABLE_PROMPT, "prompt": INITIAL_PROMPT,
               "help": "privileged mode"},
    "no cli session paging enable": {"output": None, "prompt": [INITIAL_PROMPT, ENABLE_PROMPT],
                                     "help": "paging off"},
    "config term": {"output": None, "new_prompt": CONFIG_PROMPT, "prompt": ENABLE_PROMPT,
                    "help": "configuration mode"},
    "configure terminal": {"output": None, "new_prompt": CONFIG_PROMPT, "prompt": ENABLE_PROMPT,
                           "help": "configuration mode"},
    "exit": {"output": Onyx.make_exit, "help": "leave the mode"},
    "_default_": {"output": "% Unrecognized command", "help": ""},
}
