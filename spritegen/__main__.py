from spritegen.cli import main

main()
