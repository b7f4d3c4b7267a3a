from tuner.cli import exit_after_main

exit_after_main()
